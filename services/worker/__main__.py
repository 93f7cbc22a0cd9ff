from services.core.web.app import run
from services.worker.app import create_app
from services.worker.settings import WorkerSettings

if __name__ == "__main__":
    settings = WorkerSettings()
    run(lambda: create_app(settings), settings)
