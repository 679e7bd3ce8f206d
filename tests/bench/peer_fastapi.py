"""The FastAPI + uvicorn + PyTorch peer of trcd for bench_server.sh: POST /v1/control with the
body trcd takes ({"state": [...], "target": [...]}), answered by the lean PyTorch network of
peer_torch.py (medium, random init) on one thread. Debian: python3-fastapi python3-uvicorn
python3-torch.

    OMP_NUM_THREADS=1 python3 -m uvicorn --app-dir tests/bench peer_fastapi:app --port 8000
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402
from fastapi import FastAPI, HTTPException  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from peer_torch import build_model  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
torch.manual_seed(0)
MODEL = build_model(torch, os.environ.get("PEER_SIZE", "medium")).eval()
app = FastAPI()


class Control(BaseModel):
    state: list[float]
    target: list[float]


@app.post("/v1/control")
def control(req: Control):
    if len(req.state) != 2 or len(req.target) != 2:
        raise HTTPException(status_code=422, detail="state and target need 2 numbers")
    with torch.inference_mode():
        u = MODEL(torch.tensor([req.state]), torch.tensor([req.target]))
    return {"controls": u[0].tolist()}
