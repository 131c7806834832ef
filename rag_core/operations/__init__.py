"""Operations: backups and restore, backfill of past analyses, deletion of a video, the demo."""
