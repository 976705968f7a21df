-- dashboard_console_logins_by_day: AWS console sign-ins per UTC day, successes and failures.
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: day, event_outcome, logins.
CREATE OR REPLACE VIEW dashboard_console_logins_by_day AS
SELECT event_date AS day,
       coalesce(event.outcome, 'unknown') AS event_outcome,
       count(*) AS logins
FROM dashboard_events
WHERE event.action = 'ConsoleLogin'
GROUP BY ALL
ORDER BY day, event_outcome;
