"""Capture: conversations from any OpenAI-compatible client, recorded as traces (docs/capture.md).

`assemble` reads a call (request, whole or streamed reply), `call` classifies it (answered,
refused, cut short), `transcript` turns OpenAI messages into the Trace's, `book` groups calls
into conversations and completes them, `publisher` sends completed traces in the background
(spooling to disk while NATS is away), `runtime` ties them to a running service, and `http`
is the ASGI middleware and the complete route. Only `http` knows about HTTP; none of them
imports NATS (the service passes a send function, `inference.events.NatsTraceSink`).
"""
