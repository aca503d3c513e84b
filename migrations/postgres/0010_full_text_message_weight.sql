-- Message and error words weigh A in the full-text index, payload (request and response)
-- words the default D, so that a search by someone who may not view a model's payloads asks
-- for A only; before, a hidden payload's words could be probed through search. Existing
-- entries get their message words added at weight A (their old words, all D, stay).
UPDATE logs_text AS t
SET tsv = setweight(to_tsvector('simple', concat_ws(E'\n', l.message, l.error_message)), 'A') || t.tsv
FROM logs AS l
WHERE l.id = t.log_id AND (l.message IS NOT NULL OR l.error_message IS NOT NULL);
