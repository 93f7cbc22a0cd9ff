from services.core.web.app import run
from services.log.app import create_app
from services.log.settings import LogSettings

if __name__ == "__main__":
    settings = LogSettings()
    run(lambda: create_app(settings), settings)
