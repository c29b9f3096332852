"""What a household can hold: rooms, receptacle and object kinds with their affordances, and the six ALFWorld task
types with the (task type, object, receptacle) triples each admits, split into seen and unseen pools.

The vocabulary is ALFWorld's (ALFRED's object and receptacle names, lower-case, numbered per household), so that
prompts written for ALFWorld carry over.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cache

# ----------------------------------------------------------------------------- task types (ALFWorld's names)
PICK_AND_PLACE = "pick_and_place_simple"
PICK_TWO = "pick_two_obj_and_place"
CLEAN = "pick_clean_then_place_in_recep"
HEAT = "pick_heat_then_place_in_recep"
COOL = "pick_cool_then_place_in_recep"
LOOK = "look_at_obj_in_light"
TASK_TYPES: tuple[str, ...] = (PICK_AND_PLACE, PICK_TWO, CLEAN, HEAT, COOL, LOOK)

#: status flags of an object (bit masks)
CLEAN_BIT, HOT_BIT, COOL_BIT, SLICED_BIT, ON_BIT = 1, 2, 4, 8, 16
#: the status a task type asks of its object, and the appliance kind that gives it
STATUS_OF: dict[str, int] = {CLEAN: CLEAN_BIT, HEAT: HOT_BIT, COOL: COOL_BIT}
APPLIANCE_OF: dict[str, str] = {CLEAN: "sinkbasin", HEAT: "microwave", COOL: "fridge"}
LAMP = "desklamp"


@dataclass(frozen=True)
class ReceptacleKind:
    name: str
    openable: bool
    counts: dict[str, tuple[int, int]]  # room -> (min, max) instances


@dataclass(frozen=True)
class ObjectKind:
    name: str
    places: tuple[str, ...]  # receptacle kinds it is found on / may be put in
    cleanable: bool = False
    heatable: bool = False
    coolable: bool = False
    sliceable: bool = False
    sharp: bool = False  # slices things
    light: bool = False  # a light source (not pickupable; `use` turns it on)
    examinable: bool = False  # a look_at_obj_in_light object
    category: str = ""  # distractors come from the same category

    @property
    def pickupable(self) -> bool:
        return not self.light


ROOMS: tuple[str, ...] = ("kitchen", "livingroom", "bedroom", "bathroom")

_R = ReceptacleKind
RECEPTACLES: dict[str, ReceptacleKind] = {r.name: r for r in (
    _R("countertop", False, {"kitchen": (1, 3), "bathroom": (1, 1)}),
    _R("cabinet", True, {"kitchen": (2, 6), "livingroom": (0, 2), "bathroom": (1, 3)}),
    _R("drawer", True, {"kitchen": (1, 4), "livingroom": (0, 2), "bedroom": (1, 3), "bathroom": (0, 2)}),
    _R("fridge", True, {"kitchen": (1, 1)}),
    _R("microwave", True, {"kitchen": (1, 1)}),
    _R("sinkbasin", False, {"kitchen": (1, 1), "bathroom": (1, 1)}),
    _R("stoveburner", False, {"kitchen": (2, 4)}),
    _R("diningtable", False, {"kitchen": (0, 1), "livingroom": (0, 1)}),
    _R("shelf", False, {"kitchen": (0, 2), "livingroom": (0, 2), "bedroom": (0, 2), "bathroom": (0, 1)}),
    _R("garbagecan", False, {"kitchen": (1, 1), "livingroom": (1, 1), "bedroom": (1, 1), "bathroom": (1, 1)}),
    _R("coffeemachine", False, {"kitchen": (1, 1)}),
    _R("toaster", False, {"kitchen": (0, 1)}),
    _R("sofa", False, {"livingroom": (1, 1)}),
    _R("armchair", False, {"livingroom": (0, 1)}),
    _R("coffeetable", False, {"livingroom": (1, 1)}),
    _R("sidetable", False, {"livingroom": (1, 2), "bedroom": (1, 2)}),
    _R("tvstand", False, {"livingroom": (1, 1)}),
    _R("bed", False, {"bedroom": (1, 1)}),
    _R("desk", False, {"bedroom": (0, 1)}),
    _R("dresser", False, {"bedroom": (1, 1)}),
    _R("toilet", False, {"bathroom": (1, 1)}),
    _R("bathtubbasin", False, {"bathroom": (0, 1)}),
    _R("towelholder", False, {"bathroom": (1, 1)}),
    _R("handtowelholder", False, {"bathroom": (0, 1)}),
    _R("toiletpaperhanger", False, {"bathroom": (1, 1)}),
)}

_FOOD = ("countertop", "diningtable", "fridge", "microwave", "sinkbasin", "garbagecan")
_DISH = ("countertop", "cabinet", "diningtable", "shelf", "sinkbasin", "microwave", "fridge")
_UTENSIL = ("countertop", "drawer", "diningtable", "sinkbasin")
_COOKWARE = ("countertop", "cabinet", "stoveburner", "sinkbasin", "diningtable")
_SMALL = ("countertop", "cabinet", "drawer", "shelf", "diningtable")
_LIVING = ("sofa", "armchair", "coffeetable", "sidetable", "tvstand", "shelf", "drawer", "cabinet", "diningtable")
_BEDROOM = ("bed", "desk", "dresser", "drawer", "shelf", "sidetable")
_DESKTOP = ("desk", "dresser", "sidetable", "shelf", "drawer", "coffeetable", "diningtable")
_BATH = ("countertop", "cabinet", "drawer", "shelf", "toilet")

_O = ObjectKind
OBJECTS: dict[str, ObjectKind] = {o.name: o for o in (
    _O("apple", _FOOD, cleanable=True, heatable=True, coolable=True, sliceable=True, category="produce"),
    _O("bread", (*_FOOD, "toaster"), heatable=True, coolable=True, sliceable=True, category="produce"),
    _O("egg", _FOOD, cleanable=True, heatable=True, coolable=True, category="produce"),
    _O("lettuce", _FOOD, cleanable=True, coolable=True, sliceable=True, category="produce"),
    _O("potato", _FOOD, cleanable=True, heatable=True, coolable=True, sliceable=True, category="produce"),
    _O("tomato", _FOOD, cleanable=True, heatable=True, coolable=True, sliceable=True, category="produce"),
    _O("mug", (*_DISH, "coffeemachine", "desk"), cleanable=True, heatable=True, coolable=True, examinable=True,
       category="dish"),
    _O("cup", _DISH, cleanable=True, heatable=True, coolable=True, category="dish"),
    _O("plate", _DISH, cleanable=True, heatable=True, coolable=True, examinable=True, category="dish"),
    _O("bowl", _DISH, cleanable=True, coolable=True, examinable=True, category="dish"),
    _O("pan", _COOKWARE, cleanable=True, coolable=True, category="cookware"),
    _O("pot", _COOKWARE, cleanable=True, coolable=True, category="cookware"),
    _O("kettle", _COOKWARE, cleanable=True, category="cookware"),
    _O("knife", _UTENSIL, cleanable=True, sharp=True, category="utensil"),
    _O("butterknife", _UTENSIL, cleanable=True, sharp=True, category="utensil"),
    _O("fork", _UTENSIL, cleanable=True, category="utensil"),
    _O("spoon", _UTENSIL, cleanable=True, category="utensil"),
    _O("spatula", _UTENSIL, cleanable=True, category="utensil"),
    _O("ladle", _UTENSIL, cleanable=True, category="utensil"),
    _O("saltshaker", _SMALL, category="condiment"),
    _O("peppershaker", _SMALL, category="condiment"),
    _O("winebottle", (*_SMALL, "fridge", "garbagecan"), coolable=True, category="bottle"),
    _O("dishsponge", (*_SMALL, "sinkbasin", "bathtubbasin"), cleanable=True, category="bottle"),
    _O("soapbottle", (*_SMALL, "toilet", "garbagecan"), category="bottle"),
    _O("remotecontrol", _LIVING, examinable=True, category="gadget"),
    _O("keychain", (*_LIVING, *_BEDROOM), examinable=True, category="gadget"),
    _O("creditcard", (*_LIVING, *_BEDROOM, "countertop"), examinable=True, category="gadget"),
    _O("cellphone", (*_BEDROOM, "sofa", "coffeetable"), examinable=True, category="gadget"),
    _O("watch", (*_LIVING, "dresser", "sidetable"), examinable=True, category="gadget"),
    _O("laptop", ("sofa", "bed", "desk", "coffeetable", "diningtable", "tvstand"), examinable=True,
       category="gadget"),
    _O("newspaper", (*_LIVING, "garbagecan"), examinable=True, category="paper"),
    _O("book", (*_BEDROOM, "coffeetable"), examinable=True, category="paper"),
    _O("box", ("sofa", "coffeetable", "sidetable", "tvstand", "shelf", "diningtable", "dresser"), examinable=True,
       category="decor"),
    _O("pillow", ("sofa", "armchair", "bed"), examinable=True, category="decor"),
    _O("statue", ("coffeetable", "sidetable", "tvstand", "shelf", "dresser", "diningtable"), examinable=True,
       category="decor"),
    _O("vase", ("coffeetable", "sidetable", "tvstand", "shelf", "diningtable"), examinable=True, category="decor"),
    _O("cd", (*_DESKTOP, "garbagecan"), examinable=True, category="paper"),
    _O("pen", (*_DESKTOP, "garbagecan"), examinable=True, category="stationery"),
    _O("pencil", (*_DESKTOP, "garbagecan"), examinable=True, category="stationery"),
    _O("alarmclock", ("desk", "dresser", "sidetable", "shelf"), examinable=True, category="gadget"),
    _O("soapbar", ("countertop", "sinkbasin", "bathtubbasin", "toilet", "cabinet", "shelf", "garbagecan"),
       cleanable=True, category="toiletry"),
    _O("spraybottle", (*_BATH, "garbagecan"), category="toiletry"),
    _O("toiletpaper", (*_BATH, "toiletpaperhanger", "garbagecan"), category="toiletry"),
    _O("candle", (*_BATH, "bathtubbasin"), category="toiletry"),
    _O("cloth", (*_BATH, "sinkbasin", "bathtubbasin"), cleanable=True, category="toiletry"),
    _O("towel", ("towelholder", "shelf", "cabinet"), category="toiletry"),
    _O("handtowel", ("handtowelholder", "countertop", "cabinet"), category="toiletry"),
    _O("tissuebox", ("toilet", "countertop", "shelf", "sidetable", "coffeetable", "dresser", "desk"),
       category="toiletry"),
    _O(LAMP, ("desk", "sidetable", "dresser"), light=True, category="light"),
)}


def _affords(kind: ObjectKind, task_type: str) -> bool:
    if not kind.pickupable:
        return False
    return {
        PICK_AND_PLACE: True,
        PICK_TWO: True,
        CLEAN: kind.cleanable,
        HEAT: kind.heatable,
        COOL: kind.coolable,
        LOOK: kind.examinable,
    }[task_type]


#: receptacle kinds a task never targets: the appliance that changes the object's status is not its destination
_NOT_TARGETS: dict[str, frozenset[str]] = {
    CLEAN: frozenset({"sinkbasin", "bathtubbasin", "garbagecan"}),
    HEAT: frozenset({"microwave", "garbagecan"}),
    COOL: frozenset({"fridge", "garbagecan"}),
}


def rooms_with(recep: str) -> tuple[str, ...]:
    """Rooms that can hold a receptacle kind."""
    return tuple(r for r in ROOMS if r in RECEPTACLES[recep].counts)


@cache
def all_triples() -> tuple[tuple[str, str, str], ...]:
    """Every (task type, object kind, receptacle kind) a household can pose, in a fixed order.

    For look_at_obj_in_light the receptacle is the light source (`desklamp`), as in ALFWorld's task names.
    Heat and cool need the kitchen (microwave, fridge); the object must be placeable somewhere in a room of a
    household that also has the target receptacle (any room: multi-room households span them).
    """
    out = []
    for task_type in TASK_TYPES:
        for obj in OBJECTS.values():
            if not _affords(obj, task_type):
                continue
            if task_type == LOOK:
                out.append((task_type, obj.name, LAMP))
                continue
            for recep in obj.places:
                if recep in _NOT_TARGETS.get(task_type, ()):
                    continue
                out.append((task_type, obj.name, recep))
    return tuple(out)


def is_unseen(triple: tuple[str, str, str]) -> bool:
    """The fixed seen/unseen partition: about one triple in five is held out (a hash, stable across machines)."""
    return zlib.crc32("|".join(triple).encode()) % 5 == 0


@cache
def triples(pool: str) -> tuple[tuple[str, str, str], ...]:
    """The triples of the `seen` (training) or `unseen` (held-out) pool."""
    if pool not in ("seen", "unseen"):
        raise ValueError(f"pool must be 'seen' or 'unseen', got {pool!r}")
    want = pool == "unseen"
    return tuple(t for t in all_triples() if is_unseen(t) == want)


def task_description(task_type: str, obj: str, recep: str, variant: int = 0) -> str:
    """ALFWorld's goal sentences ("put a clean apple in fridge."); `variant` picks one of its phrasings."""
    phrasings = {
        PICK_AND_PLACE: ("put a {o} in {r}.", "put some {o} on {r}."),
        PICK_TWO: ("put two {o} in {r}.", "find two {o} and put them in {r}."),
        CLEAN: ("put a clean {o} in {r}.", "clean some {o} and put it in {r}."),
        HEAT: ("put a hot {o} in {r}.", "heat some {o} and put it in {r}."),
        COOL: ("put a cool {o} in {r}.", "cool some {o} and put it in {r}."),
        LOOK: ("look at {o} under the {r}.", "examine the {o} with the {r}."),
    }[task_type]
    return phrasings[variant % len(phrasings)].format(o=obj, r=recep)
