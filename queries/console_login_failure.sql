-- console_login_failure: failed AWS console sign-ins.
-- Wazuh rule: 80254 (level 5), only for events without errorCode (an errorCode sends the event down the
--   80203 branch instead) and only on the responseElements text. Here the normalized outcome decides, so a
--   failure reported with or without errorCode is counted alike.
-- Columns: every column of events. Unknown user names appear as HIDDEN_DUE_TO_SECURITY_REASONS.
CREATE OR REPLACE VIEW console_login_failure AS
SELECT *
FROM api_calls
WHERE event.action = 'ConsoleLogin'
  AND event.outcome = 'failure';
