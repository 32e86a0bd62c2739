"""FilterCriteria: Lambda's event filtering, in EventBridge's pattern language.

A pattern is a JSON object. Its leaves are arrays of matchers (OR'd); every field of an object
must match (AND); nested objects look into nested fields. A mapping holds up to 5 patterns,
OR'd: a record is kept when any pattern matches it, and every record is kept when there are none.

    {"value": {"status": ["paid", {"prefix": "refund-"}], "total": [{"numeric": [">", 100]}]}}

Matchers: exact JSON values (string, number, boolean, null; type-exact, so "300" != 300 and
300 != 300.0), {"anything-but": ...}, {"numeric": [op, n, ...]}, {"exists": bool},
{"prefix": s}, {"suffix": s}, {"equals-ignore-case": s}.

Use: `record_filter = compile_filters(patterns)` once at config load, then per record
`record_filter.matches(kafka_filter_view(entry))`. A view is what a pattern sees of one record,
with its base64 data decoded once; every pattern runs on that one view.

Modules: `patterns` (compile, `RecordFilter`, nested objects), `leaves` (arrays of matchers),
`views` (per-source views), `values` (what matchers see), `errors`.
"""

from esm.filtering.errors import FilterPatternError
from esm.filtering.patterns import MAX_FILTERS, MAX_PATTERN_CHARS, RecordFilter, compile_filters
from esm.filtering.values import UNDECODABLE, NotJsonText
from esm.filtering.views import decode_data, dynamodb_filter_view, kafka_filter_view, kinesis_filter_view

__all__ = [
    "MAX_FILTERS",
    "MAX_PATTERN_CHARS",
    "UNDECODABLE",
    "FilterPatternError",
    "NotJsonText",
    "RecordFilter",
    "compile_filters",
    "decode_data",
    "dynamodb_filter_view",
    "kafka_filter_view",
    "kinesis_filter_view",
]
