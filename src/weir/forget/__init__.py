"""The right to delete: ``weir forget`` removes a data subject from every table that holds it
and physically removes the files that still hold it (docs/forget.md).

subject.py   the selector → typed values and salted digests, checked against the project
plan.py      which tables hold the subject and how its rows are recognised (lineage for gold)
rows.py      finding the rows (DataFusion) and naming them in a DELETE without their values
records.py   redacting run records that mention the subject
forget.py    the whole operation: locks, deletes, file removal, audit
"""
