"""Placeholder: the staff views are being written."""

from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates", static_folder="static")
