"""Change Data Capture and the Pub/Sub API (gRPC) of the sandbox org.

``cdc``: change events from committed writes (Avro, fastavro); ``service``: Salesforce's
``eventbus.v1.PubSub`` service over them (grpcio); ``proto``: the official proto, vendored.
"""
