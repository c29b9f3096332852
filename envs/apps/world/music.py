"""World generator for the music app: artists, albums, songs, playlists and the friend's song recommendation."""

import random
from typing import Any

from distillgym.envs.apps.world.base import WorldGen
from distillgym.envs.apps.world.catalog import (
    BAND_ADJ,
    BAND_NOUN,
    COUNTRIES,
    FIRST_NAMES,
    GENRES,
    LAST_NAMES,
    TITLE_A,
    TITLE_N,
)


class MusicGen(WorldGen):
    # ------------------------------------------------------------------------------------------------- music
    def music(self) -> None:
        r = self.rng
        artists: list[dict[str, Any]] = []
        albums: list[dict[str, Any]] = []
        songs: list[dict[str, Any]] = []
        names: set[str] = set()
        titles: set[str] = set()
        for _ in range(self.n(10, 13)):
            while True:
                name = (f"The {r.choice(BAND_ADJ)} {r.choice(BAND_NOUN)}" if r.random() < 0.55
                        else f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}")
                if name not in names:
                    break
            names.add(name)
            genre = r.choice(GENRES)
            aid = len(artists) + 1
            artists.append({"id": aid, "name": name, "genre": genre, "country": r.choice(COUNTRIES),
                            "follower_count": r.randint(500, 2_000_000)})
            for _ in range(r.randint(1, 2)):
                year = r.randint(1975, 2025)
                album: dict[str, Any] = {"id": len(albums) + 1, "title": self._title(r, titles), "artist_id": aid,
                                         "genre": genre, "release_year": year, "song_ids": []}
                albums.append(album)
                for _ in range(r.randint(3, 6)):
                    sid = len(songs) + 1
                    songs.append({"id": sid, "title": self._title(r, titles), "artist_id": aid,
                                  "album_id": album["id"], "genre": genre,
                                  "duration_seconds": int(r.triangular(110, 480, 215)), "release_year": year,
                                  "play_count": int(r.paretovariate(1.2) * 2000)})
                    album["song_ids"].append(sid)
        ids = [s["id"] for s in songs]
        playlists: list[dict[str, Any]] = []
        for title in self.sample(["Morning Run", "Focus", "Road Trip", "Chill Evening", "Party Mix", "Rainy Day",
                               "Throwbacks", "Dinner Jazz"], self.n(3, 5)):
            created = self.past(200, 10)
            playlists.append({"id": len(playlists) + 1, "title": title, "description": f"My {title.lower()} songs",
                              "is_public": r.random() < 0.4, "song_ids": self.sample(ids, r.randint(5, 14)),
                              "created_at": created, "updated_at": max(created, self.past(10, 0.5))})
        liked = [{"id": i + 1, "song_id": s, "liked_at": self.past(180, 0.5)}
                 for i, s in enumerate(self.sample(ids, self.n(10, 18)))]
        library = [{"id": i + 1, "song_id": s, "added_at": self.past(300, 1)}
                   for i, s in enumerate(self.sample(ids, self.n(15, 25)))]
        fav = self.sample(ids, 12)
        history = sorted((self.past(14, 0.05), r.choice(fav) if r.random() < 0.6 else r.choice(ids))
                         for _ in range(self.n(30, 50)))
        play = [{"id": i + 1, "song_id": s, "played_at": t} for i, (t, s) in enumerate(history)]
        follows = [{"id": i + 1, "artist_id": a["id"], "followed_at": self.past(365, 5)}
                   for i, a in enumerate(self.sample(artists, r.randint(2, 4)))]
        self.s["music"] = {"artists": artists, "albums": albums, "songs": songs, "playlists": playlists,
                           "liked_songs": liked, "library": library, "play_history": play,
                           "followed_artists": follows}
        self.ids.update(artists=len(artists), albums=len(albums), songs=len(songs), playlists=len(playlists),
                        liked_songs=len(liked), library=len(library), play_history=len(play),
                        followed_artists=len(follows))
        # The friend's song recommendation email.
        s = r.choice(songs)
        c = self.reco_friend
        self.email(self.user_threads(), c["email"], c["name"], [self.user["email"]], "You have to hear this",
                   f"Hey {self.user['first_name']}, you have to listen to \"{s['title']}\" by "
                   f"{artists[s['artist_id'] - 1]['name']}. Perfect for your {playlists[0]['title']} playlist!\n\n"
                   f"{c['first_name']}", self.past(5, 0.2))

    @staticmethod
    def _title(r: random.Random, taken: set[str]) -> str:
        while True:
            a, n = r.choice(TITLE_A), r.choice(TITLE_N)
            t = r.choice((f"{a} {n}", f"{n} of {r.choice(TITLE_N)}", f"The {a} {n}", f"{a} {n} {r.choice(TITLE_N)}"))
            if t not in taken:
                taken.add(t)
                return t
