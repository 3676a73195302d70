"""The MQTT bridge: a gateway publishing its bands to a broker and taking commands from it.

Nothing here is imported at CLI start-up; aiomqtt is imported only inside `bridge.mqtt`.
"""
