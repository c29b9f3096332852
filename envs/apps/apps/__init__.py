"""The simulated apps, one module each; `APP_CLASSES` lists them in documentation order."""

from distillgym.envs.apps.apps.calendars import Calendar
from distillgym.envs.apps.apps.contacts import Contacts
from distillgym.envs.apps.apps.files import Files
from distillgym.envs.apps.apps.mail import Mail
from distillgym.envs.apps.apps.music import Music
from distillgym.envs.apps.apps.notes import Notes
from distillgym.envs.apps.apps.payments import Payments
from distillgym.envs.apps.apps.shop import Shop
from distillgym.envs.apps.apps.todo import Todo

APP_CLASSES = [Mail, Contacts, Calendar, Notes, Todo, Payments, Shop, Files, Music]

__all__ = ["APP_CLASSES"]
