-- digests: one row per CloudTrail digest file (integrity chain of the delivered log files).
-- Wazuh rule: none.
-- Columns: "@timestamp" (digestEndTime), cloud.account.id, file.path, log.file.path, aws.cloudtrail.digest.*,
--          event_date (hive partition: UTC date of "@timestamp").
CREATE OR REPLACE VIEW digests AS
SELECT *
FROM read_parquet('{lake}/digests/event_date=*/*.parquet', hive_partitioning = true, hive_types = {'event_date': DATE});
