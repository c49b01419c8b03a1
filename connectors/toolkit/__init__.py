"""The connector toolkit: what every API connector needs, written once.

- :mod:`~crm2erp.connectors.toolkit.timestamps`: timestamp cursor values parsed
  (on :mod:`crm2erp.connectors.cursortype`) and written as sortable UTC text;
- :mod:`~crm2erp.connectors.toolkit.ordering`: batches in exact ``(cursor, key)``
  order with deletions merged in, resumable inside a group of equal timestamps;
- :mod:`~crm2erp.connectors.toolkit.odata`: the OData string literal;
- :mod:`~crm2erp.connectors.toolkit.odata_batch`: OData ``$batch`` bodies (multipart
  with changesets) written and read;
- :mod:`~crm2erp.connectors.toolkit.paging`: every record of a paged read; the pages
  (CSV results) a response header links; a listing read by keyset;
- :mod:`~crm2erp.connectors.toolkit.writer`: the external-id batch upsert loop, the
  delete loop by target id and the JSON encoder default for request bodies;
- :mod:`~crm2erp.connectors.toolkit.children`: a stream's ``children`` embedded into
  the rows of a batch, read by foreign key a chunk of parents per query;
- :mod:`~crm2erp.connectors.toolkit.errors`: the request an error answers, its
  JSON body (from the answer or its bytes) and the text of one outside the system's
  error format, for a connector's error table; ``check()`` over streams and over the
  parts of one, and the names a system lacks;
- :mod:`~crm2erp.connectors.toolkit.headers`: the integers an answer's headers
  carry (rate limits, quotas);
- :mod:`~crm2erp.connectors.toolkit.config`: strict models, URL and name fields,
  stream-name and ``children`` checks.
- :mod:`~crm2erp.connectors.toolkit.streams`: the stream config base (``track_deletes``,
  ``children``), the connection base that checks children and adds their foreign keys
  (and one that checks stream names only),
  default streams of any stream model and a named default stream overridden key by key;
- :mod:`~crm2erp.connectors.toolkit.targets`: the writer base (the setting writes match
  on), the chunked look-up by key, the error of an unusable answer, the JSON body of a
  usable one and the result of a record the system does not have;
- :mod:`~crm2erp.connectors.toolkit.creates`: a create a lost answer does not double
  (sent once; what exists looked up before the rest is sent again), and a list created
  in one transaction with the records it refuses isolated;
- :mod:`~crm2erp.connectors.toolkit.batches`: a batch the system refuses as a whole
  split until the refused records are alone; lists cut into calls;
- :mod:`~crm2erp.connectors.toolkit.answers`: one answer per record of a batch write,
  and an all-or-none call's records that were only rolled back sent again;
- :mod:`~crm2erp.connectors.toolkit.jobs`: an asynchronous job polled until done;
- :mod:`~crm2erp.connectors.toolkit.records`: deletes and the like by integer record
  id, the ids looked up first;
- :mod:`~crm2erp.connectors.toolkit.connector`: the connector class of a reader and a
  writer around one client, its streams described one at a time, writes to a stream
  that is not writable refused (``upsert`` and write-back ``update`` too, up front);
- :mod:`~crm2erp.connectors.toolkit.values`: a value read back compared with the one
  a write would send (numbers as text, empties); the fields a write sends, child tables
  compared row by row and sent whole;
- :mod:`~crm2erp.connectors.toolkit.listing`: a listing read whole without trusting
  the API's order (latest version per key, sorted by ``(cursor, key)``), records picked
  strictly, the five paging styles as settings and the paginators they build;
- :mod:`~crm2erp.connectors.toolkit.cursors`: a cursor field in the API's own format
  (ISO, epoch, number, a ``strftime`` pattern), read and written back;
- :mod:`~crm2erp.connectors.toolkit.fields`: record fields by dotted name, renamed and
  nested, and the fields a write sent that the API did not store; a row field that
  holds a record of its own;
- :mod:`~crm2erp.connectors.toolkit.rules`: an error table as data (status, body text,
  fatal or retry), made the HTTP client's ``error_mapper``.

With :class:`crm2erp.http.HttpClient` (and its ``single_attempt()`` for writes that
must not repeat) a connector is left with its endpoints, field quirks and error
table; ``docs/writing-a-connector.md`` walks through one.
"""
