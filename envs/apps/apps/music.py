"""Music app (Spotify-like): catalog of songs/albums/artists, playlists, likes, library, followed artists, history."""

import typing

from distillgym.envs.apps.base import ApiError, App, matches, nonempty, paginate, parse_time

_SONG_HINT = "Use apis.music.search_songs(query=...) to find song ids."
_PL_HINT = "Use apis.music.list_playlists() to find playlist ids."


class Music(App):
    """Music streaming."""

    name = "music"
    description = "Music: search songs, albums and artists, manage playlists, liked songs and the library, follow " \
                  "artists, play songs and see the play history."
    schema: typing.ClassVar[dict] = {"artists": [], "albums": [], "songs": [], "playlists": [], "liked_songs": [],
                                     "library": [], "play_history": [], "followed_artists": []}

    # -- lookups --
    def _song(self, song_id: int) -> dict:
        return self._find("songs", song_id, "song", _SONG_HINT)

    def _album(self, album_id: int) -> dict:
        return self._find("albums", album_id, "album", "Use apis.music.search_albums(query=...) to find album ids.")

    def _artist(self, artist_id: int) -> dict:
        return self._find("artists", artist_id, "artist",
                          "Use apis.music.search_artists(query=...) to find artist ids.")

    def _playlist(self, playlist_id: int) -> dict:
        return self._find("playlists", playlist_id, "playlist", _PL_HINT)

    def _maps(self) -> tuple[dict, dict, set, set]:
        artists = {a["id"]: a["name"] for a in self._db["artists"]}
        albums = {a["id"]: a["title"] for a in self._db["albums"]}
        liked = {x["song_id"] for x in self._db["liked_songs"]}
        lib = {x["song_id"] for x in self._db["library"]}
        return artists, albums, liked, lib

    def _song_views(self, songs: list[dict]) -> list[dict]:
        artists, albums, liked, lib = self._maps()
        return [{**s, "artist_name": artists.get(s["artist_id"]), "album_title": albums.get(s["album_id"]),
                 "liked": s["id"] in liked, "in_library": s["id"] in lib} for s in songs]

    def _songs_by_id(self, ids: list[int]) -> list[dict]:
        by_id = {s["id"]: s for s in self._db["songs"]}
        return [by_id[i] for i in ids if i in by_id]

    # -- catalog --
    def search_songs(self, query: str = "", artist_id: int | None = None, album_id: int | None = None,
                     genre: str | None = None, min_duration: int | None = None, max_duration: int | None = None,
                     sort_by: typing.Literal["relevance", "play_count", "duration", "release_year"] = "relevance",
                     page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """Search the song catalog by words in the title, artist, album or genre, with filters.

        Args:
            artist_id: Only songs of this artist.
            album_id: Only songs of this album.
            genre: Only songs of this genre (see list_genres).
            min_duration: Only songs at least this long, in seconds.
            max_duration: Only songs at most this long, in seconds.
            sort_by: "relevance" (catalog order), "play_count" (most played first), "duration" (longest first) or
                "release_year" (newest first).

        Returns: a list of songs (id, title, artist_id, artist_name, album_id, album_title, genre, duration_seconds,
            release_year, play_count, liked, in_library).
        """
        artists, albums, _, _ = self._maps()
        out = [s for s in self._db["songs"]
               if (artist_id is None or s["artist_id"] == artist_id) and (album_id is None or s["album_id"] == album_id)
               and (genre is None or s["genre"].lower() == genre.lower())
               and (min_duration is None or s["duration_seconds"] >= min_duration)
               and (max_duration is None or s["duration_seconds"] <= max_duration)
               and matches(query, s["title"], artists.get(s["artist_id"]), albums.get(s["album_id"]), s["genre"])]
        key = {"play_count": "play_count", "duration": "duration_seconds", "release_year": "release_year"}.get(sort_by)
        if key:
            out.sort(key=lambda s: (-s[key], s["id"]))
        return self._song_views(paginate(out, page_index, page_limit))

    def show_song(self, song_id: int) -> dict:
        """Show one song.

        Args:
            song_id: Id of the song.

        Returns: the song as in search_songs.
        """
        return self._song_views([self._song(song_id)])[0]

    def search_albums(self, query: str = "", artist_id: int | None = None, genre: str | None = None,
                      page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """Search albums by words in the title, artist or genre.

        Args:
            artist_id: Only albums of this artist.
            genre: Only albums of this genre.

        Returns: a list of albums (id, title, artist_id, artist_name, genre, release_year, song_ids).
        """
        artists = {a["id"]: a["name"] for a in self._db["artists"]}
        out = [{**a, "artist_name": artists.get(a["artist_id"])} for a in self._db["albums"]
               if (artist_id is None or a["artist_id"] == artist_id)
               and (genre is None or a["genre"].lower() == genre.lower())
               and matches(query, a["title"], artists.get(a["artist_id"]), a["genre"])]
        return paginate(out, page_index, page_limit)

    def show_album(self, album_id: int) -> dict:
        """Show an album with its songs in track order and total duration.

        Args:
            album_id: Id of the album.

        Returns: the album with "songs" (as in search_songs) and total_duration_seconds.
        """
        a = self._album(album_id)
        songs = self._song_views(self._songs_by_id(a["song_ids"]))
        artist = next((x["name"] for x in self._db["artists"] if x["id"] == a["artist_id"]), None)
        return {**a, "artist_name": artist, "songs": songs,
                "total_duration_seconds": sum(s["duration_seconds"] for s in songs)}

    def search_artists(self, query: str = "", genre: str | None = None, page_index: int = 0,
                       page_limit: int = 5) -> list[dict]:
        """Search artists by name or genre.

        Args:
            genre: Only artists of this genre.

        Returns: a list of artists (id, name, genre, country, follower_count, followed).
        """
        followed = {x["artist_id"] for x in self._db["followed_artists"]}
        out = [{**a, "followed": a["id"] in followed} for a in self._db["artists"]
               if (genre is None or a["genre"].lower() == genre.lower()) and matches(query, a["name"], a["genre"])]
        return paginate(out, page_index, page_limit)

    def show_artist(self, artist_id: int) -> dict:
        """Show an artist with their album ids and song count.

        Args:
            artist_id: Id of the artist.

        Returns: the artist with album_ids, song_count and followed.
        """
        a = self._artist(artist_id)
        return {**a, "album_ids": [x["id"] for x in self._db["albums"] if x["artist_id"] == artist_id],
                "song_count": sum(s["artist_id"] == artist_id for s in self._db["songs"]),
                "followed": any(x["artist_id"] == artist_id for x in self._db["followed_artists"])}

    def list_genres(self) -> list[dict]:
        """List the music genres in the catalog with their song counts.

        Returns: a list of {"genre", "song_count"} sorted by genre.
        """
        counts: dict[str, int] = {}
        for s in self._db["songs"]:
            counts[s["genre"]] = counts.get(s["genre"], 0) + 1
        return [{"genre": g, "song_count": n} for g, n in sorted(counts.items())]

    # -- playlists --
    def list_playlists(self, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List the user's playlists (oldest first) with song counts and total durations.

        Returns: a list of {id, title, description, is_public, song_count, total_duration_seconds, created_at,
            updated_at}.
        """
        durations = {s["id"]: s["duration_seconds"] for s in self._db["songs"]}
        out = [{k: p[k] for k in ("id", "title", "description", "is_public", "created_at", "updated_at")}
               | {"song_count": len(p["song_ids"]),
                  "total_duration_seconds": sum(durations.get(i, 0) for i in p["song_ids"])}
               for p in self._db["playlists"]]
        return paginate(out, page_index, page_limit)

    def show_playlist(self, playlist_id: int) -> dict:
        """Show a playlist with its songs in order.

        Args:
            playlist_id: Id of the playlist.

        Returns: the playlist (id, title, description, is_public, song_ids, created_at, updated_at) with "songs" (as
            in search_songs) and total_duration_seconds.
        """
        p = self._playlist(playlist_id)
        songs = self._song_views(self._songs_by_id(p["song_ids"]))
        return {**p, "songs": songs, "total_duration_seconds": sum(s["duration_seconds"] for s in songs)}

    def create_playlist(self, title: str, description: str = "", is_public: bool = False,
                        song_ids: list[int] | None = None) -> dict:
        """Create a playlist, optionally with songs.

        Args:
            title: Title (unique among the user's playlists).
            description: Description.
            is_public: Whether others can see it.
            song_ids: Songs to put in it, in order.

        Returns: {"playlist_id": ..., "message": ...}.
        """
        title = nonempty(title, "title")
        if any(p["title"].lower() == title.lower() for p in self._db["playlists"]):
            raise ApiError(f"You already have a playlist titled {title!r}. {_PL_HINT}")
        ids = list(dict.fromkeys(song_ids or []))
        for i in ids:
            self._song(i)
        rec = {"id": self._new_id("playlists"), "title": title, "description": description, "is_public": is_public,
               "song_ids": ids, "created_at": self._now, "updated_at": self._now}
        self._db["playlists"].append(rec)
        return {"playlist_id": rec["id"], "message": f"Created playlist {title!r}."}

    def update_playlist(self, playlist_id: int, title: str | None = None, description: str | None = None,
                        is_public: bool | None = None) -> dict:
        """Rename a playlist or change its description or visibility; None keeps a field.

        Args:
            playlist_id: Id of the playlist.

        Returns: the updated playlist (without songs).
        """
        p = self._playlist(playlist_id)
        if title is not None:
            title = nonempty(title, "title")
            if any(x["title"].lower() == title.lower() and x["id"] != playlist_id for x in self._db["playlists"]):
                raise ApiError(f"You already have a playlist titled {title!r}.")
            p["title"] = title
        if description is not None:
            p["description"] = description
        if is_public is not None:
            p["is_public"] = is_public
        p["updated_at"] = self._now
        return p

    def delete_playlist(self, playlist_id: int) -> dict:
        """Delete a playlist (the songs stay in the catalog).

        Args:
            playlist_id: Id of the playlist.

        Returns: {"message": ...}.
        """
        p = self._playlist(playlist_id)
        self._remove("playlists", playlist_id)
        return {"message": f"Deleted playlist {p['title']!r}."}

    def add_song_to_playlist(self, playlist_id: int, song_id: int) -> dict:
        """Add a song at the end of a playlist.

        Args:
            playlist_id: Id of the playlist.
            song_id: Id of the song.

        Returns: {"song_count": ..., "message": ...}.
        """
        p = self._playlist(playlist_id)
        s = self._song(song_id)
        if song_id in p["song_ids"]:
            raise ApiError(f"Song {song_id} ({s['title']}) is already in playlist {playlist_id}.")
        p["song_ids"].append(song_id)
        p["updated_at"] = self._now
        return {"song_count": len(p["song_ids"]), "message": f"Added {s['title']!r} to {p['title']!r}."}

    def remove_song_from_playlist(self, playlist_id: int, song_id: int) -> dict:
        """Remove a song from a playlist.

        Args:
            playlist_id: Id of the playlist.
            song_id: Id of the song.

        Returns: {"song_count": ..., "message": ...}.
        """
        p = self._playlist(playlist_id)
        if song_id not in p["song_ids"]:
            raise ApiError(f"Song {song_id} is not in playlist {playlist_id}. Use apis.music.show_playlist("
                           f"playlist_id={playlist_id}) to see its songs.")
        p["song_ids"].remove(song_id)
        p["updated_at"] = self._now
        return {"song_count": len(p["song_ids"]), "message": f"Removed song {song_id} from {p['title']!r}."}

    # -- likes, library, follows --
    def _toggle(self, table: str, key: str, value: int, on: bool, what: str) -> dict:
        present = next((x for x in self._db[table] if x[key] == value), None)
        if on:
            if present:
                raise ApiError(f"{what} {value} is already {table.replace('_', ' ')}.")
            stamp = {"liked_songs": "liked_at", "library": "added_at", "followed_artists": "followed_at"}[table]
            self._db[table].append({"id": self._new_id(table), key: value, stamp: self._now})
        else:
            if not present:
                raise ApiError(f"{what} {value} is not in {table.replace('_', ' ')}.")
            self._remove(table, present["id"])
        return {"message": "Done."}

    def like_song(self, song_id: int) -> dict:
        """Like a song.

        Args:
            song_id: Id of the song.

        Returns: {"message": ...}.
        """
        self._song(song_id)
        return self._toggle("liked_songs", "song_id", song_id, True, "Song")

    def unlike_song(self, song_id: int) -> dict:
        """Remove a song from the liked songs.

        Args:
            song_id: Id of the song.

        Returns: {"message": ...}.
        """
        return self._toggle("liked_songs", "song_id", song_id, False, "Song")

    def list_liked_songs(self, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List the songs the user liked, most recently liked first.

        Returns: a list of songs as in search_songs, each with liked_at.
        """
        rows = sorted(self._db["liked_songs"], key=lambda x: (x["liked_at"], x["id"]), reverse=True)
        rows = paginate(rows, page_index, page_limit)
        views = self._song_views(self._songs_by_id([r["song_id"] for r in rows]))
        at = {r["song_id"]: r["liked_at"] for r in rows}
        return [{**v, "liked_at": at[v["id"]]} for v in views]

    def add_song_to_library(self, song_id: int) -> dict:
        """Save a song to the user's library.

        Args:
            song_id: Id of the song.

        Returns: {"message": ...}.
        """
        self._song(song_id)
        return self._toggle("library", "song_id", song_id, True, "Song")

    def remove_song_from_library(self, song_id: int) -> dict:
        """Remove a song from the user's library.

        Args:
            song_id: Id of the song.

        Returns: {"message": ...}.
        """
        return self._toggle("library", "song_id", song_id, False, "Song")

    def list_library_songs(self, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List the songs saved in the user's library, most recently added first.

        Returns: a list of songs as in search_songs, each with added_at.
        """
        rows = sorted(self._db["library"], key=lambda x: (x["added_at"], x["id"]), reverse=True)
        rows = paginate(rows, page_index, page_limit)
        views = self._song_views(self._songs_by_id([r["song_id"] for r in rows]))
        at = {r["song_id"]: r["added_at"] for r in rows}
        return [{**v, "added_at": at[v["id"]]} for v in views]

    def follow_artist(self, artist_id: int) -> dict:
        """Follow an artist.

        Args:
            artist_id: Id of the artist.

        Returns: {"message": ...}.
        """
        a = self._artist(artist_id)
        out = self._toggle("followed_artists", "artist_id", artist_id, True, "Artist")
        a["follower_count"] += 1
        return out

    def unfollow_artist(self, artist_id: int) -> dict:
        """Stop following an artist.

        Args:
            artist_id: Id of the artist.

        Returns: {"message": ...}.
        """
        a = self._artist(artist_id)
        out = self._toggle("followed_artists", "artist_id", artist_id, False, "Artist")
        a["follower_count"] = max(0, a["follower_count"] - 1)
        return out

    def list_followed_artists(self) -> list[dict]:
        """List the artists the user follows.

        Returns: a list of artists (id, name, genre, country, follower_count, followed_at).
        """
        by_id = {a["id"]: a for a in self._db["artists"]}
        return [{**by_id[f["artist_id"]], "followed_at": f["followed_at"]} for f in self._db["followed_artists"]
                if f["artist_id"] in by_id]

    # -- playback --
    def play_song(self, song_id: int) -> dict:
        """Play a song now (adds it to the play history and counts the play).

        Args:
            song_id: Id of the song.

        Returns: {"message": ..., "song": song as in search_songs}.
        """
        s = self._song(song_id)
        s["play_count"] += 1
        self._db["play_history"].append({"id": self._new_id("play_history"), "song_id": song_id,
                                         "played_at": self._now})
        return {"message": f"Now playing {s['title']!r}.", "song": self._song_views([s])[0]}

    def list_play_history(self, start_date: str | None = None, end_date: str | None = None, page_index: int = 0,
                          page_limit: int = 5) -> list[dict]:
        """List the songs the user played, most recent first (a song appears once per play).

        Returns: a list of {id (play id), song_id, played_at, title, artist_name, duration_seconds, genre}.
        """
        lo = parse_time(start_date, "start_date") if start_date else None
        hi = parse_time(end_date, "end_date", end_of_day=True) if end_date else None
        rows = [h for h in self._db["play_history"] if (not lo or h["played_at"] >= lo)
                and (not hi or h["played_at"] <= hi)]
        rows.sort(key=lambda h: (h["played_at"], h["id"]), reverse=True)
        rows = paginate(rows, page_index, page_limit)
        artists = {a["id"]: a["name"] for a in self._db["artists"]}
        by_id = {s["id"]: s for s in self._db["songs"]}
        out = []
        for h in rows:
            s = by_id.get(h["song_id"])
            out.append({**h, "title": s and s["title"], "artist_name": s and artists.get(s["artist_id"]),
                        "duration_seconds": s and s["duration_seconds"], "genre": s and s["genre"]})
        return out
