-- console_login_success: successful AWS console sign-ins.
-- Wazuh rule: 80253 (level 3), which matches every ConsoleLogin and stays final only when no child rule
--   claims it; an odd result value (not Success/Failure) is still "success" there. Here the outcome must be
--   success (responseElements.ConsoleLogin = Success).
-- Columns: every column of events. MFA use is aws.cloudtrail.console_login.mfa_used.
CREATE OR REPLACE VIEW console_login_success AS
SELECT *
FROM api_calls
WHERE event.action = 'ConsoleLogin'
  AND event.outcome = 'success';
