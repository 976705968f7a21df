-- iam_user_created: IAM users created (successful CreateUser): who created whom, from where.
-- Wazuh rule: 80202 (level 3; 3.x docs: 80861 "User created"); here only calls that succeeded.
-- Columns: every column of events. The creator is user.*, the new user user.target.{name,id}.
CREATE OR REPLACE VIEW iam_user_created AS
SELECT *
FROM api_calls
WHERE event.provider = 'iam.amazonaws.com'
  AND event.action = 'CreateUser'
  AND event.outcome = 'success';
