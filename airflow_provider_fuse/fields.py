"""The names of a call's fields, as the operators, the notifier, CallRequest and CallOptions spell them.

Import-free on purpose: DAG files import the operators at every parse, and their ``template_fields``
are built from these names; the rules for each field are in :mod:`airflow_provider_fuse.validation`.
"""

#: The fields that differ from call to call: a campaign row holds these only.
ROW_FIELDS = ("phone_number", "caller_id", "post_dial", "variables")
#: The settings a call and a campaign share (``validation.CallOptions``, in its order).
OPTION_FIELDS = (
    "start_timestamp",
    "end_timestamp",
    "max_attempts",
    "reattempt_wait",
    "result_url",
    "is_pci",
    "calling_hours",
    "timezone",
)
#: Every field of a single call.
CALL_FIELDS = ROW_FIELDS + OPTION_FIELDS
