from services.auth.app import create_app
from services.auth.settings import AuthSettings
from services.core.web.app import run

if __name__ == "__main__":
    settings = AuthSettings()
    run(lambda: create_app(settings), settings)
