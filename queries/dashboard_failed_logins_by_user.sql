-- dashboard_failed_logins_by_user: failed console sign-ins per user name (HIDDEN_DUE_TO_SECURITY_REASONS
--   stands for names AWS does not reveal), from how many source addresses, first and last.
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: user_name, failures, source_ips, first_failure, last_failure.
CREATE OR REPLACE VIEW dashboard_failed_logins_by_user AS
SELECT coalesce(user.name, '(unknown)') AS user_name,
       count(*) AS failures,
       count(DISTINCT source.ip) AS source_ips,
       min("@timestamp") AS first_failure,
       max("@timestamp") AS last_failure
FROM dashboard_events
WHERE event.action = 'ConsoleLogin'
  AND event.outcome = 'failure'
GROUP BY ALL
ORDER BY failures DESC, user_name;
