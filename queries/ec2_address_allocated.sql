-- ec2_address_allocated: Elastic IP addresses allocated (successful AllocateAddress).
-- Wazuh rule: 80202 (level 3); here only calls that succeeded.
-- Columns: every column of events. The address is in aws.cloudtrail.response_elements ($.publicIp).
CREATE OR REPLACE VIEW ec2_address_allocated AS
SELECT *
FROM api_calls
WHERE event.provider = 'ec2.amazonaws.com'
  AND event.action = 'AllocateAddress'
  AND event.outcome = 'success';
