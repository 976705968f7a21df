-- ec2_security_group_created: security groups created (successful CreateSecurityGroup).
-- Wazuh rule: 80202 (level 3, "EC2 - VPC" list entry); here only calls that succeeded.
-- Columns: every column of events. The group name and VPC are in aws.cloudtrail.request_parameters
--   ($.groupName, $.vpcId), the new group id in aws.cloudtrail.response_elements ($.groupId).
CREATE OR REPLACE VIEW ec2_security_group_created AS
SELECT *
FROM api_calls
WHERE event.provider = 'ec2.amazonaws.com'
  AND event.action = 'CreateSecurityGroup'
  AND event.outcome = 'success';
