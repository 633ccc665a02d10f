-- event_count (named query): the number of events event_list returns for the
-- same parameters (the total of a paged list).
SELECT count() AS total
FROM
(
{{template "event_list.sql" .}}
)
