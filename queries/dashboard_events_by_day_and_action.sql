-- dashboard_events_by_day_and_action: events per UTC day, stacked by action: the ten busiest actions of the
--   range by name, every other action as '(other)'.
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: day, event_action, events.
CREATE OR REPLACE VIEW dashboard_events_by_day_and_action AS
WITH busiest AS (
    SELECT event.action AS event_action
    FROM dashboard_events
    GROUP BY ALL
    ORDER BY count(*) DESC, event_action
    LIMIT 10
)
SELECT event_date AS day,
       CASE WHEN event.action IN (SELECT event_action FROM busiest) THEN event.action ELSE '(other)' END
           AS event_action,
       count(*) AS events
FROM dashboard_events
GROUP BY ALL
ORDER BY day, events DESC, event_action;
