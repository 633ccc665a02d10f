{{- /*
_stats_interval buckets per Grafana's interval in whole minutes, the
resolution of the per-minute stats.
*/ -}}
toStartOfInterval(bucket, INTERVAL intDiv($__interval_s + 59, 60) minute)