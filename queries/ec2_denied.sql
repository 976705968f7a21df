-- ec2_denied: the six EC2 use-case calls (run, start, stop, create security group, allocate and associate an
--   Elastic IP) refused for lack of permission.
-- Wazuh rule: 80203 (level 4): EC2 denials carry Client.UnauthorizedOperation, which 80250's "AccessDenied"
--   substring never matches, and 80203 also fires for any other error (throttling, dry runs). Here a denial is
--   an errorCode in the explicit denial_codes set, nothing else.
-- Columns: every column of events.
CREATE OR REPLACE VIEW ec2_denied AS
SELECT *
FROM api_calls
WHERE event.provider = 'ec2.amazonaws.com'
  AND event.action IN ('RunInstances', 'StartInstances', 'StopInstances', 'CreateSecurityGroup',
                       'AllocateAddress', 'AssociateAddress')
  AND aws.cloudtrail.error_code IN (SELECT code FROM denial_codes);
