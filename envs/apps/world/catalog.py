"""The word lists and tables the world generator draws from (data)."""

from datetime import datetime
from typing import Any

from distillgym.envs.apps.base import DEFAULT_NOW

NOW = datetime.fromisoformat(DEFAULT_NOW)
SIZES = {"small": 1.0, "medium": 1.5, "large": 2.5}

FIRST_NAMES = [
    "Aisha", "Ben", "Carla", "Diego", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kara", "Liam", "Maya",
    "Nikhil", "Olivia", "Pablo", "Quinn", "Rosa", "Samir", "Tessa", "Umar", "Vera", "Wes", "Ximena", "Yusuf", "Zoe",
    "Amara", "Bruno", "Chloe", "Dmitri", "Esme", "Felix", "Gina", "Hassan", "Ivy", "Jonas", "Keiko", "Leo", "Mira",
    "Noah", "Priya", "Rafael", "Sofia", "Theo", "Uma", "Victor", "Wren", "Yara", "Adrian", "Bianca", "Caleb", "Daria",
    "Emil", "Freya", "Gabriel", "Hana", "Isaac", "Julia", "Kofi", "Lucia",
]
LAST_NAMES = [
    "Alvarez", "Bennett", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Johnson", "Kowalski",
    "Lopez", "Murphy", "Nakamura", "Okafor", "Patel", "Quinn", "Rossi", "Schmidt", "Turner", "Usman", "Varga",
    "Walsh", "Xu", "Yilmaz", "Zimmer", "Andersen", "Brooks", "Costa", "Diaz", "Ellis", "Ferreira", "Grant", "Hale",
    "Ibrahim", "Jensen", "Kim", "Larsen", "Moreno", "Novak", "Ortiz", "Price", "Reyes", "Singh", "Tanaka", "Vogel",
]
COMPANIES = [("Northwind Labs", "northwind.com"), ("Bluefin Analytics", "bluefin.io"),
             ("Cedar & Stone", "cedarstone.com"), ("Kestrel Systems", "kestrel.dev"),
             ("Orchid Health", "orchid.health")]
OTHER_COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella Design", "Stark Logistics", "Wayne Foods", "Hooli",
                   "Vandelay Imports", "Soylent Labs", "Pied Piper"]
JOB_TITLES = ["Software Engineer", "Product Manager", "Data Analyst", "Designer", "Marketing Lead", "Accountant",
              "Sales Manager", "Research Scientist", "Operations Lead", "HR Partner"]
MAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "proton.me", "icloud.com"]
STREETS = ["Maple", "Oak", "Cedar", "Elm", "Pine", "Willow", "Lake", "Hill", "Park", "River", "Sunset", "Harbor"]
STREET_KINDS = ["St", "Ave", "Rd", "Blvd", "Lane", "Drive"]
CITIES = [("Springfield", "IL", "62704"), ("Portland", "OR", "97205"), ("Austin", "TX", "78701"),
          ("Madison", "WI", "53703"), ("Boulder", "CO", "80302"), ("Raleigh", "NC", "27601")]
TRAVEL_CITIES = ["Lisbon", "Tokyo", "Chicago", "Denver", "Barcelona", "Montreal", "Seattle", "New Orleans", "Boston",
                 "Mexico City"]
RESTAURANTS = ["Luigi's Trattoria", "Sakura Sushi", "The Golden Fork", "Taco Libre", "Bombay Spice", "Le Petit Bistro",
               "Green Bowl", "Smokehouse BBQ", "Pho Saigon", "Blue Door Cafe"]
PROJECTS = ["Atlas", "Beacon", "Comet", "Delta", "Evergreen", "Falcon", "Horizon", "Nimbus"]
VENDORS = [("Brightline Internet", "billing@brightline.net", 45, 90), ("City Power & Water", "invoices@citypower.com",
           60, 180), ("Greenfield Dental", "billing@greenfielddental.com", 80, 400),
           ("FitZone Gym", "accounts@fitzone.com", 30, 70), ("Harbor Insurance", "billing@harborins.com", 90, 260)]
SHOP_NAME, SHOP_EMAIL, SHOP_DEALS = "ShopMart", "orders@shopmart.com", "deals@shopmart.com"
AIRLINE, AIRLINE_EMAIL = "Skyway Airlines", "no-reply@skyway-air.com"
HOTEL, HOTEL_EMAIL = "StayLane", "reservations@staylane.com"

P2P = [("Dinner at {r}", 18, 85), ("Groceries", 12, 90), ("Concert tickets", 40, 160), ("Uber ride home", 8, 35),
       ("Rent share", 400, 950), ("Utilities split", 25, 110), ("Coffee", 4, 12), ("Movie night", 10, 30),
       ("Birthday gift for {p}", 20, 80), ("Gas money", 15, 60), ("Brunch at {r}", 15, 55), ("Book club snacks", 6, 25),
       ("Weekend cabin", 120, 300), ("Team lunch", 12, 40), ("Fantasy league dues", 20, 50), ("Paint supplies", 10, 45)]

PRODUCTS: dict[str, tuple[list[Any], ...]] = {
    "Electronics": (["Wireless Headphones", 40, 300], ["USB-C Charger", 15, 60], ["Bluetooth Speaker", 25, 200],
                    ["Mechanical Keyboard", 50, 180], ["Wireless Mouse", 15, 80], ["27-inch Monitor", 150, 450],
                    ["Smartwatch", 90, 400], ["Portable SSD 1TB", 60, 160], ["Webcam", 30, 120]),
    "Kitchen": (["Blender", 30, 150], ["Chef's Knife", 25, 140], ["Coffee Maker", 35, 220],
                ["Cast Iron Skillet", 20, 70], ["Electric Kettle", 20, 90], ["Air Fryer", 60, 180],
                ["Cutting Board", 12, 45]),
    "Books": (["Cookbook: Weeknight Dinners", 15, 35], ["Novel: The Quiet Harbor", 10, 28],
              ["Guide to Python", 25, 55], ["Travel Guide: Portugal", 14, 30], ["Biography: A Life in Music", 12, 32],
              ["Sci-Fi: Stars Beyond", 9, 25]),
    "Clothing": (["Rain Jacket", 50, 180], ["Running Shoes", 60, 160], ["Wool Sweater", 40, 120],
                 ["Denim Jeans", 35, 110], ["Baseball Cap", 12, 35], ["Hiking Socks (3-pack)", 12, 30]),
    "Home": (["Desk Lamp", 20, 90], ["Throw Blanket", 20, 70], ["Scented Candle", 8, 30], ["Wall Clock", 15, 60],
             ["Storage Baskets (set of 3)", 20, 55], ["Indoor Plant Pot", 10, 40]),
    "Sports": (["Yoga Mat", 18, 70], ["Dumbbell Set", 40, 200], ["Water Bottle", 10, 40], ["Tennis Racket", 40, 220],
               ["Camping Tent", 80, 350], ["Bike Helmet", 30, 120]),
    "Beauty": (["Face Moisturizer", 12, 60], ["Shampoo", 6, 30], ["Electric Toothbrush", 30, 150],
               ["Sunscreen SPF 50", 8, 25]),
    "Toys": (["Building Blocks Set", 20, 120], ["Board Game: Island Quest", 20, 60], ["Puzzle 1000 pieces", 12, 30],
             ["Plush Bear", 10, 35]),
    "Office": (["Notebook (pack of 5)", 8, 25], ["Gel Pens (12)", 6, 18], ["Ergonomic Chair", 150, 450],
               ["Standing Desk", 250, 700], ["Desk Organizer", 12, 40]),
}
BRANDS = {"Electronics": ["Sonora", "Voltix", "Pixelon", "Auralis"], "Kitchen": ["ChefLine", "Hearth & Co",
          "Brewmaster"], "Books": ["Harbor Press", "Lantern Books"], "Clothing": ["Northtrail", "UrbanThread",
          "Pacefield"], "Home": ["Nestwell", "Lumen Home"], "Sports": ["Peakform", "Stridewell", "Camplight"],
          "Beauty": ["Glowe", "PureLeaf"], "Toys": ["Brickly", "Playnest"], "Office": ["Deskworks", "Paperlane"]}
PRODUCT_ADJ = ["", "Pro", "Lite", "Plus", "Classic", "Max", "Mini", "Eco"]

GENRES = ["pop", "rock", "jazz", "hip-hop", "electronic", "classical", "country", "indie", "r&b", "folk"]
BAND_ADJ = ["Velvet", "Electric", "Silver", "Midnight", "Golden", "Wild", "Neon", "Paper", "Crimson", "Hollow",
            "Lucky", "Quiet", "Broken", "Northern"]
BAND_NOUN = ["Echoes", "Foxes", "Harbors", "Satellites", "Lanterns", "Rivers", "Owls", "Parades", "Tides", "Comets",
             "Giants", "Wolves", "Dreamers", "Pilots"]
TITLE_A = ["Summer", "Electric", "Lonely", "Golden", "Broken", "Silent", "Endless", "Burning", "Paper", "Blue",
           "Northern", "Midnight", "Wild", "Secret", "Falling", "Little", "Neon", "Velvet", "Distant", "Sweet"]
TITLE_N = ["Heart", "Rain", "Highway", "Dreams", "Fire", "Light", "City", "Ocean", "Stars", "Road", "Morning",
           "Shadows", "Garden", "River", "Sky", "Letters", "Echo", "Wings", "Storm", "Home", "Radio", "Memory"]
COUNTRIES = ["US", "UK", "Canada", "Australia", "Sweden", "Nigeria", "Brazil", "Japan", "France", "Korea"]

RECIPES = [
    ("Lemon Garlic Pasta", ["spaghetti", "lemon", "garlic", "olive oil", "parmesan", "parsley"], 20),
    ("Chicken Curry", ["chicken thighs", "onion", "curry paste", "coconut milk", "rice", "cilantro"], 40),
    ("Shakshuka", ["eggs", "tomatoes", "bell pepper", "onion", "cumin", "feta"], 30),
    ("Banana Bread", ["bananas", "flour", "sugar", "butter", "eggs", "baking soda", "walnuts"], 70),
    ("Veggie Tacos", ["tortillas", "black beans", "corn", "avocado", "lime", "salsa"], 25),
    ("Mushroom Risotto", ["arborio rice", "mushrooms", "shallot", "white wine", "parmesan", "stock"], 45),
    ("Greek Salad", ["cucumber", "tomatoes", "red onion", "olives", "feta", "oregano"], 10),
    ("Pancakes", ["flour", "milk", "eggs", "butter", "baking powder", "maple syrup"], 20),
]
BOOKS = ["The Overstory", "Project Hail Mary", "Educated", "Circe", "The Midnight Library", "Sapiens", "Dune",
         "Atomic Habits", "Pachinko", "The Martian", "Klara and the Sun", "Thinking, Fast and Slow"]
GROCERIES = ["milk", "eggs", "bread", "apples", "spinach", "chicken", "rice", "yogurt", "coffee", "bananas", "cheese",
             "tomatoes", "pasta", "olive oil", "onions", "butter"]
STORES = ["FreshMart", "Corner Grocer", "Hardware Hub", "Book Nook", "PharmaPlus", "Pet Palace"]

TODO_LISTS = {
    "Personal": [("Renew passport", "high"), ("Call the bank about the card fee", "medium"), ("Book haircut", "low"),
                 ("Schedule dentist cleaning", "medium"), ("Return library books", "low"),
                 ("Plan weekend hike", "low"), ("Update emergency contacts", "medium")],
    "Work": [("Finish {project} report", "high"), ("Review pull requests", "medium"),
             ("Prepare slides for all-hands", "high"), ("Submit expense report", "medium"),
             ("1:1 prep notes", "low"), ("Write onboarding doc", "low"), ("Fix flaky {project} tests", "medium")],
    "Home": [("Fix leaking faucet", "high"), ("Replace air filter", "medium"), ("Clean gutters", "low"),
             ("Donate old clothes", "low"), ("Buy light bulbs", "low"), ("Paint the bedroom", "medium")],
    "Groceries": [(g.capitalize(), "low") for g in ("milk", "eggs", "coffee beans", "spinach", "rice", "olive oil",
                                                    "bananas")],
}
