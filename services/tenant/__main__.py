from services.core.web.app import run
from services.tenant.app import create_app
from services.tenant.settings import TenantSettings

if __name__ == "__main__":
    settings = TenantSettings()
    run(lambda: create_app(settings), settings)
