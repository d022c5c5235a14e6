"""Flask extensions, created unbound here so any module can import them without cycles."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from voiceline.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
