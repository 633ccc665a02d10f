-- event_export (named query, run by the Go package): every event of
-- event_list, ordered as event_page but without cursor, offset or limit.
-- The ORDER BY is one of event_page's fixed fragments.
SELECT
    {{template "_event_columns.sql" .}}
FROM
(
{{template "event_list.sql" .}}
)
ORDER BY {{.Order}}
