-- dashboard_top_source_ips: the 25 source IP addresses with the most calls (AWS service principals and
--   "AWS Internal" have no IP and are left out), with their failures and how many identities used them.
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: source_ip, events, failures, users, first_seen, last_seen.
CREATE OR REPLACE VIEW dashboard_top_source_ips AS
SELECT source.ip AS source_ip,
       count(*) AS events,
       count(*) FILTER (event.outcome = 'failure') AS failures,
       count(DISTINCT user.name) AS users,
       min("@timestamp") AS first_seen,
       max("@timestamp") AS last_seen
FROM dashboard_events
WHERE source.ip IS NOT NULL
GROUP BY ALL
ORDER BY events DESC, source_ip
LIMIT 25;
