-- events: every normalized CloudTrail event in the lake, one row per distinct event.
-- Wazuh rule: none (the base of every use-case view).
-- Columns: "@timestamp", event.*, cloud.*, source.*, user.*, user_agent.*, log.*, aws.cloudtrail.*,
--          and event_date (the hive partition: UTC date of "@timestamp"; filter on it to prune files).
CREATE OR REPLACE VIEW events AS
SELECT *
FROM read_parquet('{lake}/events/*/*.parquet', hive_partitioning = true, hive_types = {'event_date': DATE});
