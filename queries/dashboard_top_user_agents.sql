-- dashboard_top_user_agents: the 25 user agents (tool families, e.g. aws-cli, Boto3, Chrome) with the most calls.
-- Wazuh rule: none (a dashboard dataset; Wazuh's dashboards chart the alerts of its rules).
-- Columns: user_agent_name, user_agents (distinct full strings), events, failures.
CREATE OR REPLACE VIEW dashboard_top_user_agents AS
SELECT coalesce(user_agent.name, '(none)') AS user_agent_name,
       count(DISTINCT user_agent.original) AS user_agents,
       count(*) AS events,
       count(*) FILTER (event.outcome = 'failure') AS failures
FROM dashboard_events
GROUP BY ALL
ORDER BY events DESC, user_agent_name
LIMIT 25;
