"""`python -m flowcase.devstack.webhook_sink`, on the port in FLOWCASE_HTTP_PORT."""

import asyncio
import os

import uvicorn

from flowcase.devstack.webhook_sink import app

port = int(os.environ.get("FLOWCASE_HTTP_PORT", "8009"))
asyncio.run(uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port)).serve())
