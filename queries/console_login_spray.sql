-- console_login_spray: password spraying: one source address failing console logins for at least 3 different
--   users within any 600 seconds of event time. Overlapping qualifying windows form one burst (one row).
-- Wazuh rule: none (80255 counts failures of everyone together and cannot tell spraying from guessing).
-- Columns: source_ip, users (count of distinct users), failures, window_start, window_end, user_names (list),
--   account_ids (list), last_event_id, region.
CREATE OR REPLACE VIEW console_login_spray AS
WITH failures AS (
    SELECT source.address AS source_ip, user.name AS user_name, cloud.account.id AS account_id,
           cloud.region AS region, "@timestamp" AS ts, event.id AS event_id
    FROM console_login_failure
    WHERE source.address IS NOT NULL
),
windows AS (    -- for each failure, the distinct users failing from the same address in the 600 s up to it
    SELECT *,
           count(DISTINCT user_name) OVER recent AS users_in_window,
           min(ts) OVER recent AS first_in_window
    FROM failures
    WINDOW recent AS (PARTITION BY source_ip ORDER BY ts RANGE BETWEEN INTERVAL 600 SECONDS PRECEDING AND CURRENT ROW)
),
qualifying AS (
    SELECT source_ip, first_in_window AS w_start, ts AS w_end
    FROM windows
    WHERE users_in_window >= 3
),
islands AS (
    SELECT *,
           CASE WHEN w_start <= max(w_end) OVER (PARTITION BY source_ip ORDER BY w_start, w_end
                                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS opens_burst
    FROM qualifying
),
bursts AS (
    SELECT source_ip, min(w_start) AS window_start, max(w_end) AS window_end
    FROM (SELECT *, sum(opens_burst) OVER (PARTITION BY source_ip ORDER BY w_start, w_end) AS burst FROM islands)
    GROUP BY source_ip, burst
)
SELECT b.source_ip, count(DISTINCT f.user_name) AS users, count(*) AS failures, b.window_start, b.window_end,
       list(DISTINCT f.user_name ORDER BY f.user_name) AS user_names,
       list(DISTINCT f.account_id ORDER BY f.account_id) AS account_ids,
       arg_max(f.event_id, f.ts) AS last_event_id, arg_max(f.region, f.ts) AS region
FROM bursts b
JOIN failures f ON f.source_ip = b.source_ip AND f.ts BETWEEN b.window_start AND b.window_end
GROUP BY b.source_ip, b.window_start, b.window_end;
