"""The ``smpp`` carrier kind: an SMPP 3.4 ESME written in-house (docs/decisions.md).

- :mod:`.pdu`: the PDU codec and framing;
- :mod:`.session`: one bind (window, enquire_link, reconnect);
- :mod:`.encoding`: a message as submit_sm bodies;
- :mod:`.receipts`, :mod:`.inbound`: what deliver_sm carries, to the sink;
- :mod:`.carrier`: the Carrier over one or more binds, and ``build`` from options.
"""
