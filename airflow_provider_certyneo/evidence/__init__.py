"""Evidence that proves itself: the PAdES seal of a signed PDF and of its audit trail, the audit trail's
``audit-trail.json`` against the envelope and its uploads, and the bundles (signed PDF, audit trail,
``evidence.json``) that hold the result. Shared by :class:`CertyneoArchiveEvidenceOperator` and the
``certyneo-evidence`` command; imports no Airflow operator, and pyHanko only when a check runs."""
