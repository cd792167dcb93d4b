FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY nudge nudge
COPY streams streams
COPY broker broker
COPY cli cli
COPY scoring scoring
COPY playbooks playbooks
COPY notifiers notifiers
COPY crm crm
COPY delivery delivery
COPY connectors connectors
COPY cockpit cockpit
COPY replay replay
RUN pip install --no-cache-dir .
EXPOSE 6066
CMD ["nudge", "worker"]
