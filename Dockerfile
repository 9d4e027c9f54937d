# GraphiQL's files, from the npm registry exactly as web/graphiql/package-lock.json pins them (R88).
FROM node:20-slim AS graphiql
WORKDIR /graphiql
COPY web/graphiql/package.json web/graphiql/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PORT=8000

# The dependencies in a layer of their own, rebuilt only when pyproject.toml changes.
COPY pyproject.toml /src/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

# The project itself, not editable: its migrations and GraphiQL's files are package data.
COPY . /src
COPY --from=graphiql /graphiql/node_modules /src/web/graphiql/node_modules
RUN pip install --no-deps /src && rm -rf /src \
    && useradd --create-home --uid 10001 bureau && mkdir /app && chown bureau /app

USER bureau
WORKDIR /app
EXPOSE 8000
# /readyz is 200 while the database answers, 503 during an outage (R54); /healthz would stay 200.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-m", "web.healthcheck"]
# Listen on every interface inside the container, on PORT; DATABASE_URL points at PostgreSQL.
CMD ["bureau", "serve", "--host", "0.0.0.0"]
