# One image for every service; the compose file picks the command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DEBUG=0 \
    NEO_VAR_DIR=/var/lib/neo \
    MEDIA_ROOT=/var/lib/neo/media \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"

COPY . .
# collectstatic needs settings to load; a throwaway key is enough for that step.
RUN SECRET_KEY=build-only ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput --verbosity 0

RUN useradd --system --uid 1000 --home /var/lib/neo neo \
    && mkdir -p /var/lib/neo/media \
    && chown -R neo /var/lib/neo
USER neo

EXPOSE 8000
CMD ["uvicorn", "neo_support.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off", "--proxy-headers", "--ws-max-size", "1048576", "--workers", "2"]
