{{- /*
_stats_interval buckets per Grafana's interval in whole minutes, the
resolution of stats_minute.
*/ -}}
toStartOfInterval(bucket, INTERVAL intDiv($__interval_s + 59, 60) minute)