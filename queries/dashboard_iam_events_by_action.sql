-- dashboard_iam_events_by_action: IAM API calls per action, the pie of Wazuh's IAM dashboard.
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: event_action, events, failures.
CREATE OR REPLACE VIEW dashboard_iam_events_by_action AS
SELECT event.action AS event_action,
       count(*) AS events,
       count(*) FILTER (event.outcome = 'failure') AS failures
FROM dashboard_events
WHERE event.provider = 'iam.amazonaws.com'
GROUP BY ALL
ORDER BY events DESC, event_action;
