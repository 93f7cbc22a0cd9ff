from services.broadcast.app import create_app
from services.broadcast.settings import BroadcastSettings
from services.core.web.app import run

if __name__ == "__main__":
    settings = BroadcastSettings()
    run(lambda: create_app(settings), settings, ws_per_message_deflate=settings.stream_compression)
