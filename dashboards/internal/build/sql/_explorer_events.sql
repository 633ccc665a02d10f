{{- /*
_explorer_events are the events that match the filters and were active in
the time range (first transition before its end, last after its start).
The IN pre-selects the events touched since the range began, so that only
those are aggregated; an event active in the range has such a row.
*/}}
    SELECT tenant, namespace, function, qualifier, request_id,{{template "_event_columns.sql" .}}
    FROM {{.Events}}
    WHERE {{template "_key_filters.sql" .}}
      AND {{template "_request_filter.sql" .}}
      AND (tenant, request_id) IN (
          SELECT tenant, request_id
          FROM {{.Events}}
          WHERE (last_time >= $__fromTime OR {{template "_searching_by_id.sql" .}})
            AND {{template "_key_filters.sql" .}}
            AND {{template "_request_filter.sql" .}})
    GROUP BY tenant, namespace, function, qualifier, request_id
    HAVING last_seen >= {{cutoff}}
       AND ((last_seen >= $__fromTime AND first_seen <= $__toTime) OR {{template "_searching_by_id.sql" .}})
       AND {{template "_status_filter.sql" "current_state"}}