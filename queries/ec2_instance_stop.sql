-- ec2_instance_stop: EC2 instances stopped (successful StopInstances).
-- Wazuh rule: 80202 (level 3), which fires for any allow-listed API name, errors included until 80203 takes
--   them; here only calls that succeeded (refused ones are in ec2_denied).
-- Columns: every column of events.
CREATE OR REPLACE VIEW ec2_instance_stop AS
SELECT *
FROM api_calls
WHERE event.provider = 'ec2.amazonaws.com'
  AND event.action = 'StopInstances'
  AND event.outcome = 'success';
