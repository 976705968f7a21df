-- console_login_break_in: bursts of failed console logins against one user of one account: at least 5 failures
--   within any 360 seconds of event time. Overlapping qualifying windows form one burst (one row).
-- Wazuh rule: 80255 (level 10) fires on the 6th failure (not the 5th the docs state) within 360 s of *arrival*
--   at the manager, counting every user and account the collector sees together. Here windows are on
--   eventTime, per user and account, and each burst is reported once with its extent and source addresses.
-- Columns: user_name, account_id, failures, window_start, window_end, source_ips (list), last_event_id, region.
CREATE OR REPLACE VIEW console_login_break_in AS
WITH failures AS (
    SELECT user.name AS user_name, cloud.account.id AS account_id, cloud.region AS region,
           "@timestamp" AS ts, source.address AS source_ip, event.id AS event_id
    FROM console_login_failure
),
windows AS (    -- for each failure, the failures of the same user in the 360 s up to it
    SELECT *,
           count(*) OVER recent AS in_window,
           min(ts) OVER recent AS first_in_window
    FROM failures
    WINDOW recent AS (PARTITION BY user_name, account_id ORDER BY ts
                      RANGE BETWEEN INTERVAL 360 SECONDS PRECEDING AND CURRENT ROW)
),
qualifying AS (  -- windows that hold at least 5 failures
    SELECT user_name, account_id, first_in_window AS w_start, ts AS w_end
    FROM windows
    WHERE in_window >= 5
),
islands AS (     -- a window that starts after every earlier one ended opens a new burst
    SELECT *,
           CASE WHEN w_start <= max(w_end) OVER (PARTITION BY user_name, account_id ORDER BY w_start, w_end
                                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS opens_burst
    FROM qualifying
),
bursts AS (
    SELECT user_name, account_id, min(w_start) AS window_start, max(w_end) AS window_end
    FROM (SELECT *, sum(opens_burst) OVER (PARTITION BY user_name, account_id ORDER BY w_start, w_end) AS burst
          FROM islands)
    GROUP BY user_name, account_id, burst
)
SELECT b.user_name, b.account_id, count(*) AS failures, b.window_start, b.window_end,
       list(DISTINCT f.source_ip ORDER BY f.source_ip) AS source_ips,
       arg_max(f.event_id, f.ts) AS last_event_id, arg_max(f.region, f.ts) AS region
FROM bursts b
JOIN failures f
  ON f.user_name IS NOT DISTINCT FROM b.user_name AND f.account_id IS NOT DISTINCT FROM b.account_id
 AND f.ts BETWEEN b.window_start AND b.window_end
GROUP BY b.user_name, b.account_id, b.window_start, b.window_end;
