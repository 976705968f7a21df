-- ec2_address_associated: Elastic IP addresses attached to an instance or interface (successful AssociateAddress).
-- Wazuh rule: 80202 (level 3; the 4.x docs still cite an older id, 80446); here only calls that succeeded.
-- Columns: every column of events. The instance is in cloud.instance.id and related.hosts.
CREATE OR REPLACE VIEW ec2_address_associated AS
SELECT *
FROM api_calls
WHERE event.provider = 'ec2.amazonaws.com'
  AND event.action = 'AssociateAddress'
  AND event.outcome = 'success';
