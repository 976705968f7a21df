-- events: every normalized CloudTrail event in the lake, one row per distinct event.
-- Wazuh rule: none (the base of every use-case view).
-- Columns: "@timestamp", event.*, cloud.*, source.*, user.*, group.*, user_agent.*, tls.*, related.*, log.*,
--          aws.cloudtrail.*, and event_date (the hive partition: UTC date of "@timestamp"; filter on it to prune).
-- aws.cloudtrail.flattened.{request_parameters, response_elements, additional_eventdata, service_event_details}
-- are the seed schema's names for the payload columns: the same stored JSON, aliased here, not stored twice.
CREATE OR REPLACE VIEW events AS
SELECT * REPLACE (
    struct_pack(cloudtrail := struct_insert(aws.cloudtrail, flattened := struct_pack(
        request_parameters := aws.cloudtrail.request_parameters,
        response_elements := aws.cloudtrail.response_elements,
        additional_eventdata := aws.cloudtrail.additional_eventdata,
        service_event_details := aws.cloudtrail.service_event_details))) AS aws)
FROM read_parquet('{lake}/events/event_date=*/*.parquet', hive_partitioning = true, hive_types = {'event_date': DATE});
