FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml ./
COPY app.py cli.py demo.py settings.py alembic.ini ./
COPY auth ./auth
COPY licensing ./licensing
COPY loaders ./loaders
COPY migrations ./migrations
COPY models ./models
COPY resolvers ./resolvers
COPY schema ./schema
# Editable: migrations/ and alembic.ini stay beside the code, where `bureau migrate` finds them.
RUN pip install -e . && useradd --create-home --uid 10001 bureau && chown bureau /app

USER bureau
EXPOSE 8000
# Listen on every interface inside the container; DATABASE_URL points at PostgreSQL.
CMD ["bureau", "serve", "--host", "0.0.0.0", "--port", "8000"]
