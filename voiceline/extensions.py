"""Flask extensions, created unbound here so any module can import them without cycles."""

from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from voiceline.models.base import Base

db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()

login_manager = LoginManager()
login_manager.login_view = "staff.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"
