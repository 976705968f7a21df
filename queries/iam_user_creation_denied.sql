-- iam_user_creation_denied: attempts to create an IAM user refused for lack of permission.
-- Wazuh rule: 80250 (level 5; 3.x docs: 80862), which needs "AccessDenied" somewhere in errorCode. Here the
--   code must be in denial_codes, so EntityAlreadyExists or throttling are not reported as denials.
-- Columns: every column of events. The attempted user name is user.target.name.
CREATE OR REPLACE VIEW iam_user_creation_denied AS
SELECT *
FROM api_calls
WHERE event.provider = 'iam.amazonaws.com'
  AND event.action = 'CreateUser'
  AND aws.cloudtrail.error_code IN (SELECT code FROM denial_codes);
