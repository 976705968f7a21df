-- ec2_instance_run: EC2 instances launched (successful RunInstances).
-- Wazuh rule: 80202 (level 3), which fires for any of 346 allow-listed API names; here one view per use case,
--   and only calls that succeeded (a refused launch is in ec2_denied).
-- Columns: every column of events.
CREATE OR REPLACE VIEW ec2_instance_run AS
SELECT *
FROM api_calls
WHERE event.provider = 'ec2.amazonaws.com'
  AND event.action = 'RunInstances'
  AND event.outcome = 'success';
